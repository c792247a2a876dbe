"""The district the simulator plays: who and what exists, drawn from the seed and the scale alone.

Pure: no I/O, no clock; one ``random.Random`` seeded from the seed. The figures at scale 1 are the
district's own (docs: /shared/context/scenarios.md): 500+ enterprises in parks with 7,000+ devices, every
school and hospital watched, 60 school kitchens, chambers at three federation levels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from services.platform.identifiers import credit_code_check_char, identity_check_char

__all__ = [
    "DISTRICT_CODE",
    "FIGURES",
    "PARTNERS",
    "TOWNS",
    "Chamber",
    "Device",
    "District",
    "Enterprise",
    "Kitchen",
    "Park",
    "Site",
    "build_district",
    "count_at",
]

DISTRICT_CODE = "331004"
# At scale 1; every count scales and keeps at least one.
FIGURES = {
    "parks": 12,
    "enterprises": 520,
    "devices": 7_200,
    "schools": 80,
    "hospitals": 10,
    "kitchens": 60,
    "staff_per_kitchen": 4,
    "chambers": 8,
}
# The district's streets and towns with a rough centre (WGS 84), for sites, kitchens and members on the map.
TOWNS: tuple[tuple[str, float, float], ...] = (
    ("Luqiao Street", 28.5800, 121.3750),
    ("Lubei Street", 28.6000, 121.3700),
    ("Luonan Street", 28.5650, 121.3800),
    ("Tongyu Street", 28.5850, 121.3950),
    ("Fengjiang Street", 28.5400, 121.3600),
    ("Jinqing Town", 28.5350, 121.4300),
    ("Xinqiao Town", 28.6200, 121.3300),
    ("Hengjie Town", 28.5600, 121.3200),
    ("Pengjie Town", 28.5300, 121.4000),
    ("Binhai Town", 28.5250, 121.4800),
)
# Partner places of the cross-region services and the items offered each way (from
# deploy/local/govservice-seed.toml, which the govservice service loads; the planner reads no files).
# (division code, items filed in the district for the partner, items filed at the partner for the district)
PARTNERS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "522632",
        ("social_insurance_transfer", "medical_insurance_filing", "provident_fund_withdrawal"),
        (
            "social_insurance_transfer",
            "medical_insurance_filing",
            "residence_permit",
            "provident_fund_withdrawal",
        ),
    ),
    (
        "431229",
        ("social_insurance_transfer", "medical_insurance_filing", "provident_fund_withdrawal"),
        (
            "social_insurance_transfer",
            "medical_insurance_filing",
            "residence_permit",
            "provident_fund_withdrawal",
        ),
    ),
    (
        "341621",
        ("social_insurance_transfer", "medical_insurance_filing", "provident_fund_withdrawal"),
        (
            "social_insurance_transfer",
            "medical_insurance_filing",
            "residence_permit",
            "provident_fund_withdrawal",
        ),
    ),
    (
        "411426",
        ("social_insurance_transfer", "medical_insurance_filing", "provident_fund_withdrawal"),
        (
            "social_insurance_transfer",
            "medical_insurance_filing",
            "residence_permit",
            "provident_fund_withdrawal",
        ),
    ),
    (
        "330782",
        (
            "social_insurance_transfer",
            "medical_insurance_filing",
            "business_licence_change",
            "provident_fund_withdrawal",
        ),
        (
            "social_insurance_transfer",
            "medical_insurance_filing",
            "business_licence_change",
            "provident_fund_withdrawal",
        ),
    ),
    (
        "310000",
        (
            "social_insurance_transfer",
            "medical_insurance_filing",
            "business_licence_change",
            "provident_fund_withdrawal",
        ),
        (
            "social_insurance_transfer",
            "medical_insurance_filing",
            "business_licence_change",
            "provident_fund_withdrawal",
        ),
    ),
)

_SECTORS = (
    "SECTOR_MACHINERY",
    "SECTOR_AUTO_AND_MOTORCYCLE_PARTS",
    "SECTOR_ELECTRICAL_EQUIPMENT",
    "SECTOR_PLASTICS_AND_MOULDS",
    "SECTOR_METAL_PRODUCTS",
    "SECTOR_ELECTRONICS",
    "SECTOR_RENEWABLE_RESOURCES",
)
_MACHINES = {
    "SECTOR_MACHINERY": ("MACHINE_TYPE_CNC_MACHINE_TOOL", "MACHINE_TYPE_LATHE", "MACHINE_TYPE_GRINDER"),
    "SECTOR_AUTO_AND_MOTORCYCLE_PARTS": ("MACHINE_TYPE_STAMPING_PRESS", "MACHINE_TYPE_WELDING_ROBOT"),
    "SECTOR_ELECTRICAL_EQUIPMENT": ("MACHINE_TYPE_ASSEMBLY_LINE", "MACHINE_TYPE_CNC_MACHINE_TOOL"),
    "SECTOR_PLASTICS_AND_MOULDS": ("MACHINE_TYPE_INJECTION_MOULDING", "MACHINE_TYPE_CNC_MACHINE_TOOL"),
    "SECTOR_METAL_PRODUCTS": (
        "MACHINE_TYPE_DIE_CASTING",
        "MACHINE_TYPE_STAMPING_PRESS",
        "MACHINE_TYPE_GRINDER",
    ),
    "SECTOR_ELECTRONICS": ("MACHINE_TYPE_ASSEMBLY_LINE",),
    "SECTOR_RENEWABLE_RESOURCES": ("MACHINE_TYPE_OTHER", "MACHINE_TYPE_STAMPING_PRESS"),
}
_TRADE_WORDS = (
    "Precision",
    "Hengfeng",
    "Tongyu",
    "Jinqiao",
    "Xinda",
    "Haotian",
    "Ruifeng",
    "Donghai",
    "Yongsheng",
    "Huaxin",
    "Minghui",
    "Taida",
    "Kaiyuan",
    "Lianfa",
    "Shengtai",
    "Fuxing",
)
_PRODUCTS = (
    "Gearbox housing",
    "Injection mould",
    "Brake disc",
    "Motor stator",
    "Valve body",
    "Wire harness",
    "Stamped bracket",
    "Cable reel",
    "Pump impeller",
    "Recycled copper rod",
)
_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _trade_of(sector: str) -> str:
    return sector.split("_", 1)[1].split("_", maxsplit=1)[0].title()


def count_at(name: str, scale: float) -> int:
    """The district's figure ``name`` at ``scale`` (at least one)."""
    return max(1, round(FIGURES[name] * scale))


@dataclass(frozen=True)
class Park:
    key: str
    name: str
    town: str


@dataclass(frozen=True)
class Device:
    key: str
    serial: str
    workshop: str
    machine_type: str
    rated_power_kw: float


@dataclass(frozen=True)
class Enterprise:
    key: str
    credit_code: str
    name: str
    sector: str
    park: Park
    devices: tuple[Device, ...]
    product: str


@dataclass(frozen=True)
class Site:
    key: str
    name: str
    kind: str  # SITE_KIND_SCHOOL | SITE_KIND_HOSPITAL
    town: str
    latitude: float
    longitude: float
    # (sensor key, kind, zone, name)
    sensors: tuple[tuple[str, str, str, str], ...]


@dataclass(frozen=True)
class Kitchen:
    key: str
    site: Site
    name: str
    # (staff key, name, identity number, role)
    staff: tuple[tuple[str, str, str, str], ...]
    # (equipment key, kind, name)
    equipment: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class Chamber:
    key: str
    name: str
    kind: str
    sector: str
    federation: str  # key of its federation


@dataclass(frozen=True)
class District:
    seed: int
    scale: float
    parks: tuple[Park, ...]
    enterprises: tuple[Enterprise, ...]
    sites: tuple[Site, ...]
    kitchens: tuple[Kitchen, ...]
    chambers: tuple[Chamber, ...]

    @property
    def devices(self) -> int:
        return sum(len(e.devices) for e in self.enterprises)

    @property
    def schools(self) -> tuple[Site, ...]:
        return tuple(s for s in self.sites if s.kind == "SITE_KIND_SCHOOL")


def credit_code(rng: random.Random) -> str:
    """A well-formed unified social credit code of a Luqiao enterprise (GB 32100 check character)."""
    body = "91331004" + "".join(rng.choice(_CREDIT_ALPHABET) for _ in range(9))
    return body + credit_code_check_char(body)


def identity_number(rng: random.Random, division: str = DISTRICT_CODE) -> str:
    """A well-formed, invented resident identity number (ISO 7064 MOD 11-2 check character)."""
    born = f"{rng.randint(1965, 2000)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first17 = f"{division}{born}{rng.randint(0, 999):03d}"
    return first17 + identity_check_char(first17)


def _place(rng: random.Random, town: tuple[str, float, float]) -> tuple[float, float]:
    return round(town[1] + rng.uniform(-0.012, 0.012), 6), round(town[2] + rng.uniform(-0.012, 0.012), 6)


def _site_sensors(key: str, hospital: bool) -> tuple[tuple[str, str, str, str], ...]:
    if hospital:
        return (
            (f"{key}.cam-gate", "SENSOR_KIND_VIDEO_CHANNEL", "main gate", "Main gate camera"),
            (f"{key}.cam-ward", "SENSOR_KIND_VIDEO_CHANNEL", "emergency ward", "Emergency corridor camera"),
            (f"{key}.face", "SENSOR_KIND_FACE_CAPTURE", "main gate", "Gate face capture"),
            (f"{key}.panic", "SENSOR_KIND_PANIC_BUTTON", "main gate", "Security desk one-click alarm"),
        )
    return (
        (f"{key}.cam-north", "SENSOR_KIND_VIDEO_CHANNEL", "north wall", "North wall camera 2"),
        (f"{key}.cam-gate", "SENSOR_KIND_VIDEO_CHANNEL", "main gate", "Main gate camera"),
        (f"{key}.face", "SENSOR_KIND_FACE_CAPTURE", "north wall", "North wall face capture"),
        (f"{key}.panic", "SENSOR_KIND_PANIC_BUTTON", "main gate", "Gate one-click alarm"),
    )


def build_district(seed: int, scale: float) -> District:
    """The district for ``seed`` at ``scale``: the same arguments always give the same district."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    # Reproducible draws by design (the same seed, the same district), not secrets.
    rng = random.Random(f"cityhub-district:{seed}:{scale!r}")  # noqa: S311
    parks = tuple(
        Park(
            f"park{n}",
            f"{TOWNS[n % len(TOWNS)][0].split()[0]} small-and-micro enterprise park {n // len(TOWNS) + 1}",
            TOWNS[n % len(TOWNS)][0],
        )
        for n in range(count_at("parks", scale))
    )
    n_enterprises = count_at("enterprises", scale)
    n_devices = max(n_enterprises, count_at("devices", scale))
    # Every enterprise runs at least one machine; the rest are spread unevenly, as plants differ in size.
    weights = [rng.uniform(0.3, 2.5) for _ in range(n_enterprises)]
    extra = n_devices - n_enterprises
    total = sum(weights)
    shares = [int(extra * w / total) for w in weights]
    for i in range(extra - sum(shares)):
        shares[i % n_enterprises] += 1
    codes: set[str] = set()
    enterprises = []
    device_no = 0
    for n in range(n_enterprises):
        code = credit_code(rng)
        while code in codes:
            code = credit_code(rng)
        codes.add(code)
        sector = rng.choice(_SECTORS)
        machines = _MACHINES[sector]
        devices = []
        for d in range(1 + shares[n]):
            device_no += 1
            devices.append(
                Device(
                    key=f"dev{device_no}",
                    serial=f"LQ{seed % 100000:05d}-{device_no:06d}",
                    workshop=f"W{d % 3 + 1}",
                    machine_type=machines[d % len(machines)],
                    rated_power_kw=float(rng.choice((7.5, 11.0, 15.0, 22.0, 30.0))),
                )
            )
        words = rng.sample(_TRADE_WORDS, 2)
        enterprises.append(
            Enterprise(
                key=f"ent{n}",
                credit_code=code,
                name=f"Taizhou {words[0]} {words[1]} {_trade_of(sector)} Co., Ltd.",
                sector=sector,
                park=parks[n % len(parks)],
                devices=tuple(devices),
                product=rng.choice(_PRODUCTS),
            )
        )
    n_kitchens = count_at("kitchens", scale)
    n_schools = max(n_kitchens, count_at("schools", scale))
    sites = []
    for n in range(n_schools):
        town = TOWNS[n % len(TOWNS)]
        lat, lon = _place(rng, town)
        level = "Primary School" if n % 3 else "Middle School"
        key = f"school{n}"
        sites.append(
            Site(
                key,
                f"Luqiao No. {n + 1} {level}",
                "SITE_KIND_SCHOOL",
                town[0],
                lat,
                lon,
                _site_sensors(key, hospital=False),
            )
        )
    for n in range(count_at("hospitals", scale)):
        town = TOWNS[(n * 3) % len(TOWNS)]
        lat, lon = _place(rng, town)
        key = f"hospital{n}"
        sites.append(
            Site(
                key,
                f"{town[0].split()[0]} People's Hospital {n + 1}",
                "SITE_KIND_HOSPITAL",
                town[0],
                lat,
                lon,
                _site_sensors(key, hospital=True),
            )
        )
    kitchens = _kitchens(rng, sites[:n_kitchens])
    chambers = _chambers(scale)
    return District(seed, scale, parks, tuple(enterprises), tuple(sites), tuple(kitchens), tuple(chambers))


def _kitchens(rng: random.Random, schools: list[Site]) -> list[Kitchen]:
    kitchens: list[Kitchen] = []
    roles = (
        "STAFF_ROLE_MANAGER",
        "STAFF_ROLE_COOK",
        "STAFF_ROLE_COOK",
        "STAFF_ROLE_HELPER",
        "STAFF_ROLE_BUYER",
    )
    surnames = ("Wang", "Li", "Zhang", "Chen", "Lin", "Huang", "Zhou", "Wu", "Xu", "Zheng", "Ye", "Jiang")
    for n, school in enumerate(schools):
        key = f"kitchen{n}"
        staff = tuple(
            (
                f"{key}.staff{s}",
                f"{rng.choice(surnames)} {rng.choice(('Wei', 'Fang', 'Min', 'Jun', 'Hong', 'Li'))}",
                identity_number(rng),
                roles[s % len(roles)],
            )
            for s in range(FIGURES["staff_per_kitchen"])
        )
        equipment = (
            (f"{key}.fridge", "EQUIPMENT_KIND_FRIDGE", "Prep room fridge"),
            (f"{key}.freezer", "EQUIPMENT_KIND_FREEZER", "Store freezer"),
            (f"{key}.cabinet", "EQUIPMENT_KIND_DISINFECTION_CABINET", "Tableware disinfection cabinet"),
            (f"{key}.uv", "EQUIPMENT_KIND_UV_LAMP", "Prep room UV lamp"),
            (f"{key}.camera", "EQUIPMENT_KIND_CAMERA", "Prep room AI camera"),
        )
        kitchens.append(Kitchen(key, school, f"{school.name} kitchen", staff, equipment))
    return kitchens


def _chambers(scale: float) -> list[Chamber]:
    chambers: list[Chamber] = []
    for n in range(count_at("chambers", scale)):
        if n % 4 == 3:
            town = TOWNS[n % len(TOWNS)][0]
            chambers.append(
                Chamber(
                    f"chamber{n}", f"{town} Chamber of Commerce", "CHAMBER_KIND_REGIONAL", "", "fed.county"
                )
            )
        else:
            sector = _SECTORS[n % len(_SECTORS)]
            label = sector.split("_", 1)[1].replace("_", " ").title()
            chambers.append(
                Chamber(
                    f"chamber{n}",
                    f"Luqiao {label} Chamber of Commerce",
                    "CHAMBER_KIND_TRADE",
                    sector.split("_", 1)[1],
                    "fed.county",
                )
            )
    return chambers
