"""Excellence over real gRPC, PostgreSQL, Kafka and industry: rankings from a known ledger (members in a
chamber, chambers across a federation's subtree, the tie rules), a published ranking read back from Kafka
(a replay publishes nothing), awards refused with bad points, a member's ledger, and the showcase."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest
from cityhub.commerce.v1 import commerce_pb2, events_pb2
from cityhub.common.v1 import common_pb2
from psycopg import sql

from services.platform.protoconv import to_timestamp
from tests.integration.commerce.commerce_support import Commerce, fresh_code, rid
from tests.support import violations, wait_until

PROVINCE, CITY, COUNTY = (
    commerce_pb2.FEDERATION_LEVEL_PROVINCE,
    commerce_pb2.FEDERATION_LEVEL_CITY,
    commerce_pb2.FEDERATION_LEVEL_COUNTY,
)


def _period(start: datetime, end: datetime) -> common_pb2.TimeRange:
    return common_pb2.TimeRange(start_time=to_timestamp(start), end_time=to_timestamp(end))


def _federation(
    commerce: Commerce, level: commerce_pb2.FederationLevel.ValueType, division: str, parent_id: str = ""
) -> str:
    federation = commerce.call(
        "CreateFederation",
        commerce_pb2.CreateFederationRequest(
            request_id=rid(),
            name=f"Federation {division}",
            level=level,
            division_code=division,
            parent_id=parent_id,
        ),
    ).federation
    return str(federation.federation_id)


def _chamber(commerce: Commerce, federation_id: str, division: str, name: str) -> str:
    chamber = commerce.call(
        "CreateChamber",
        commerce_pb2.CreateChamberRequest(
            request_id=rid(),
            federation_id=federation_id,
            name=name,
            kind=commerce_pb2.CHAMBER_KIND_TRADE,
            sector="MACHINERY",
            division_code=division,
            join_rule=commerce_pb2.JOIN_RULE_AUTO_APPROVE_KNOWN,
        ),
    ).chamber
    return str(chamber.chamber_id)


def _member(commerce: Commerce, chamber_id: str, name: str) -> commerce_pb2.Membership:
    """A known enterprise joins: auto-approved."""
    code = commerce.industry.onboard(name=name)
    membership: commerce_pb2.Membership = commerce.call(
        "ApplyForMembership",
        commerce_pb2.ApplyForMembershipRequest(request_id=rid(), chamber_id=chamber_id, credit_code=code),
    ).membership
    assert membership.status == commerce_pb2.MEMBERSHIP_STATUS_ACTIVE
    return membership


def _award(commerce: Commerce, membership_id: str, points: int) -> commerce_pb2.LedgerEntry:
    entry: commerce_pb2.LedgerEntry = commerce.call(
        "RecordAward",
        commerce_pb2.RecordAwardRequest(
            request_id=rid(), membership_id=membership_id, title=f"Award of {points}", points=points
        ),
    ).entry
    return entry


@dataclass
class Tree:
    """Province > city (chambers A and B) > county (chamber D), members with a known ledger."""

    province: str
    city: str
    # The city's division code (posts name it).
    division: str
    county: str
    chamber_a: str
    chamber_b: str
    chamber_d: str
    # membership id by label: a1..a4 in A, b1 b2 in B, d1 in D
    members: dict[str, str]
    # credit codes by label
    codes: dict[str, str]
    names: dict[str, str]
    started: datetime
    awarded: datetime
    first_a1: commerce_pb2.LedgerEntry


@pytest.fixture(scope="module")
def tree(commerce: Commerce) -> Tree:
    started = datetime.now(UTC) - timedelta(seconds=1)
    digit = secrets.randbelow(9) + 1
    province = _federation(commerce, PROVINCE, f"9{digit}0000")
    city = _federation(commerce, CITY, f"9{digit}0100", province)
    county = _federation(commerce, COUNTY, f"9{digit}0102", city)
    tag = secrets.token_hex(2)
    chamber_a = _chamber(commerce, city, f"9{digit}0100", f"Chamber A {tag}")
    chamber_b = _chamber(commerce, city, f"9{digit}0100", f"Chamber B {tag}")
    chamber_d = _chamber(commerce, county, f"9{digit}0102", f"Chamber D {tag}")
    where = {"a1": chamber_a, "a2": chamber_a, "a3": chamber_a, "a4": chamber_a}
    where |= {"b1": chamber_b, "b2": chamber_b, "d1": chamber_d}
    names = {label: f"Enterprise {label.upper()} {tag}" for label in where}
    joined = {label: _member(commerce, chamber, names[label]) for label, chamber in where.items()}
    members = {label: m.membership_id for label, m in joined.items()}
    # The known ledger, in this order (each award is earned when it is recorded):
    #   a2 30, a1 50, a3 20, a1 10 (a1 reaches 60), a2 30 (a2 reaches 60 later), b1 100, b2 40, d1 100.
    # a4 earns nothing.
    first_a1 = None
    for label, points in [("a2", 30), ("a1", 50), ("a3", 20), ("a1", 10), ("a2", 30)]:
        entry = _award(commerce, members[label], points)
        first_a1 = first_a1 or (entry if label == "a1" else None)
    for label, points in [("b1", 100), ("b2", 40), ("d1", 100)]:
        _award(commerce, members[label], points)
    assert first_a1 is not None
    return Tree(
        province,
        city,
        f"9{digit}0100",
        county,
        chamber_a,
        chamber_b,
        chamber_d,
        members,
        {label: m.credit_code for label, m in joined.items()},
        names,
        started,
        datetime.now(UTC),
        first_a1,
    )


def _window(tree: Tree) -> common_pb2.TimeRange:
    """The period of the known ledger: every award the fixture recorded, none a test records later."""
    return _period(tree.started, tree.awarded)


def _places(ranking: commerce_pb2.Ranking) -> list[tuple[int, str, str, int]]:
    return [(r.rank, r.id, r.name, r.points) for r in ranking.entries]


def test_members_of_a_chamber_rank_by_points_with_ties_by_the_earlier_total(
    commerce: Commerce, tree: Tree
) -> None:
    m, n = tree.members, tree.names
    ranking = commerce.call(
        "GetRankings", commerce_pb2.GetRankingsRequest(chamber_id=tree.chamber_a, period=_window(tree))
    ).ranking
    # a1 and a2 both have 60: a1 reached it first. a3 is third (not second: ranks skip after a tie); a4
    # earned nothing and is not listed.
    assert _places(ranking) == [
        (1, m["a1"], n["a1"], 60),
        (1, m["a2"], n["a2"], 60),
        (3, m["a3"], n["a3"], 20),
    ]
    assert ranking.chamber_id == tree.chamber_a
    assert not ranking.federation_id

    other = commerce.call(
        "GetRankings",
        commerce_pb2.GetRankingsRequest(chamber_id=tree.chamber_b, period=_window(tree), limit=1),
    ).ranking
    assert _places(other) == [(1, m["b1"], n["b1"], 100)]


def test_a_period_before_the_awards_ranks_nobody(commerce: Commerce, tree: Tree) -> None:
    ranking = commerce.call(
        "GetRankings",
        commerce_pb2.GetRankingsRequest(
            chamber_id=tree.chamber_a, period=_period(tree.started - timedelta(days=30), tree.started)
        ),
    ).ranking
    assert list(ranking.entries) == []


def test_chambers_of_a_federation_rank_over_its_whole_subtree(commerce: Commerce, tree: Tree) -> None:
    request = commerce_pb2.GetRankingsRequest(federation_id=tree.city, period=_window(tree))
    ranking = commerce.call("GetRankings", request).ranking
    tag = tree.names["a1"].rsplit(" ", 1)[1]
    # A: 60 + 60 + 20 = 140 with three members with points; B: 100 + 40 = 140 with two; D (in the county
    # federation below the city) 100.
    assert _places(ranking) == [
        (1, tree.chamber_a, f"Chamber A {tag}", 140),
        (1, tree.chamber_b, f"Chamber B {tag}", 140),
        (3, tree.chamber_d, f"Chamber D {tag}", 100),
    ]
    province = commerce.call(
        "GetRankings", commerce_pb2.GetRankingsRequest(federation_id=tree.province, period=_window(tree))
    ).ranking
    assert _places(province) == _places(ranking)
    county = commerce.call(
        "GetRankings", commerce_pb2.GetRankingsRequest(federation_id=tree.county, period=_window(tree))
    ).ranking
    assert _places(county) == [(1, tree.chamber_d, f"Chamber D {tag}", 100)]


def test_a_ranking_request_names_its_bad_fields(commerce: Commerce, tree: Tree) -> None:
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "GetRankings",
            commerce_pb2.GetRankingsRequest(chamber_id=tree.chamber_a, federation_id=tree.city, limit=501),
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error.value)) == {"chamber_id", "period.start_time", "period.end_time", "limit"}
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "GetRankings", commerce_pb2.GetRankingsRequest(federation_id="fed_nope", period=_window(tree))
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_rankings_follow_the_callers_view(commerce: Commerce, tree: Tree) -> None:
    window = _window(tree)
    # Staff of chamber B see their own chamber and the federation their chamber is in, not chamber A.
    staff_b = {"roles": ("chamber_staff",), "scopes": (f"chamber:{tree.chamber_b}",)}
    commerce.call(
        "GetRankings", commerce_pb2.GetRankingsRequest(chamber_id=tree.chamber_b, period=window), **staff_b
    )
    commerce.call(
        "GetRankings", commerce_pb2.GetRankingsRequest(federation_id=tree.city, period=window), **staff_b
    )
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "GetRankings",
            commerce_pb2.GetRankingsRequest(chamber_id=tree.chamber_a, period=window),
            **staff_b,
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    # A member sees its own chamber's ranking, not another's.
    member = {"roles": ("enterprise_user",), "scopes": (f"enterprise:{tree.codes['a4']}",)}
    ranking = commerce.call(
        "GetRankings", commerce_pb2.GetRankingsRequest(chamber_id=tree.chamber_a, period=window), **member
    ).ranking
    assert len(ranking.entries) == 3
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "GetRankings", commerce_pb2.GetRankingsRequest(chamber_id=tree.chamber_b, period=window), **member
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_publishing_a_ranking_publishes_it_once(commerce: Commerce, tree: Tree) -> None:
    # A period reaching past now, so points earned after the first publication fall into it.
    period = _period(tree.started, tree.awarded + timedelta(minutes=10))
    request = commerce_pb2.PublishRankingRequest(
        request_id=rid(), chamber_id=tree.chamber_a, period=period, limit=2
    )
    first = commerce.call("PublishRanking", request).ranking
    m = tree.members
    assert [(r.rank, r.id, r.points) for r in first.entries] == [(1, m["a1"], 60), (1, m["a2"], 60)]

    def published(subject: str) -> list[events_pb2.RankingPublished]:
        return [
            message
            for kind, message in commerce.events({subject})
            if isinstance(message, events_pb2.RankingPublished)
        ]

    events = wait_until(lambda: published(tree.chamber_a), timeout_s=15, what="RankingPublished")
    assert len(events) == 1
    assert events[0].ranking == first

    # Points earned since change the ranking, but not a replay's answer; and a replay publishes nothing.
    _award(commerce, m["a3"], 500)
    now = commerce.call(
        "GetRankings", commerce_pb2.GetRankingsRequest(chamber_id=tree.chamber_a, period=period, limit=2)
    ).ranking
    # (520 here; other tests of this module may add match points in this open period.)
    assert now.entries[0].id == m["a3"]
    assert now.entries[0].points >= 520
    assert commerce.call("PublishRanking", request).ranking == first
    # Another ranking published after the replay reaches Kafka; by then a second event of the first would
    # have too (the outbox relays in order).
    commerce.call(
        "PublishRanking",
        commerce_pb2.PublishRankingRequest(request_id=rid(), federation_id=tree.county, period=_window(tree)),
    )
    wait_until(lambda: published(tree.county), timeout_s=15, what="the county's RankingPublished")
    assert len(published(tree.chamber_a)) == 1
    # The same request id with another body is refused.
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "PublishRanking",
            commerce_pb2.PublishRankingRequest(
                request_id=request.request_id, chamber_id=tree.chamber_a, period=period, limit=3
            ),
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in violations(error.value)


def test_an_award_outside_1_to_1000_points_is_refused_naming_points(commerce: Commerce, tree: Tree) -> None:
    for points in (0, 1001):
        with pytest.raises(grpc.RpcError) as error:
            commerce.call(
                "RecordAward",
                commerce_pb2.RecordAwardRequest(
                    request_id=rid(), membership_id=tree.members["a4"], title="Nothing much", points=points
                ),
            )
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(violations(error.value)) == {"points"}
    ledger = commerce.call("ListLedger", commerce_pb2.ListLedgerRequest(membership_id=tree.members["a4"]))
    assert list(ledger.entries) == []
    assert ledger.total_points == 0


def test_an_award_needs_a_live_visible_membership(commerce: Commerce, tree: Tree) -> None:
    request = commerce_pb2.RecordAwardRequest(
        request_id=rid(), membership_id=tree.members["a4"], title="Best newcomer", points=5
    )
    with pytest.raises(grpc.RpcError) as error:
        commerce.call("RecordAward", request, roles=("chamber_staff",), scopes=(f"chamber:{tree.chamber_b}",))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    pending = commerce.call(
        "ApplyForMembership",
        commerce_pb2.ApplyForMembershipRequest(
            request_id=rid(),
            chamber_id=tree.chamber_b,
            credit_code=fresh_code(),
            enterprise_name="Unknown Ltd",
        ),
    ).membership
    assert pending.status == commerce_pb2.MEMBERSHIP_STATUS_PENDING
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "RecordAward",
            commerce_pb2.RecordAwardRequest(
                request_id=rid(), membership_id=pending.membership_id, title="Too early", points=5
            ),
        )
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_a_members_ledger_lists_newest_first_with_the_periods_total(commerce: Commerce, tree: Tree) -> None:
    a1 = tree.members["a1"]
    member = {"roles": ("enterprise_user",), "scopes": (f"enterprise:{tree.codes['a1']}",)}
    first = commerce.call(
        "ListLedger",
        commerce_pb2.ListLedgerRequest(
            membership_id=a1, period=_window(tree), page=common_pb2.PageRequest(page_size=1)
        ),
        **member,
    )
    assert [(e.points, e.note) for e in first.entries] == [(10, "Award of 10")]
    assert first.total_points == 60
    second = commerce.call(
        "ListLedger",
        commerce_pb2.ListLedgerRequest(
            membership_id=a1,
            period=_window(tree),
            page=common_pb2.PageRequest(page_size=1, page_token=first.page.next_page_token),
        ),
        **member,
    )
    assert list(second.entries) == [tree.first_a1]
    assert second.entries[0].source == commerce_pb2.POINT_SOURCE_AWARD
    assert second.entries[0].source_id == second.entries[0].entry_id
    assert not second.page.next_page_token
    # Another enterprise does not see a1's ledger.
    with pytest.raises(grpc.RpcError) as error:
        commerce.call(
            "ListLedger",
            commerce_pb2.ListLedgerRequest(membership_id=a1),
            roles=("enterprise_user",),
            scopes=(f"enterprise:{tree.codes['a2']}",),
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_the_showcase_counts_members_and_joins_of_the_period(commerce: Commerce, tree: Tree) -> None:
    window = _window(tree)
    chamber_a = commerce.call(
        "GetShowcase", commerce_pb2.GetShowcaseRequest(chamber_id=tree.chamber_a, period=window)
    ).showcase
    assert (chamber_a.members, chamber_a.new_joins) == (4, 4)
    assert (chamber_a.activities, chamber_a.matches) == (0, 0)
    assert (chamber_a.requests_resolved, chamber_a.requests_resolved_on_time) == (0, 0)
    # The city's subtree: A (4), B (2 active; its pending applicant is no member), D (1).
    city = commerce.call(
        "GetShowcase", commerce_pb2.GetShowcaseRequest(federation_id=tree.city, period=window)
    ).showcase
    assert (city.members, city.new_joins) == (7, 7)
    assert city.federation_id == tree.city
    # A period that ended before anyone joined.
    before = commerce.call(
        "GetShowcase",
        commerce_pb2.GetShowcaseRequest(
            chamber_id=tree.chamber_a, period=_period(tree.started - timedelta(days=7), tree.started)
        ),
    ).showcase
    assert (before.members, before.new_joins) == (0, 0)
    with pytest.raises(grpc.RpcError) as error:
        commerce.call("GetShowcase", commerce_pb2.GetShowcaseRequest(chamber_id=tree.chamber_a))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(error.value)) == {"period.start_time", "period.end_time"}


def _post(commerce: Commerce, tree: Tree, label: str, kind: commerce_pb2.PostKind.ValueType) -> str:
    post = commerce.call(
        "CreatePost",
        commerce_pb2.CreatePostRequest(
            request_id=rid(),
            membership_id=tree.members[label],
            kind=kind,
            category="CNC machining",
            division_code=tree.division,
            quantity=100,
            unit="pieces",
            description=f"Post of {label}",
            valid_until=(datetime.now(UTC) + timedelta(days=30)).date().isoformat(),
        ),
        roles=("service",),
    ).post
    return str(post.post_id)


def _match(commerce: Commerce, tree: Tree, supplier: str, buyer: str, *, accept: bool) -> None:
    supply = _post(commerce, tree, supplier, commerce_pb2.POST_KIND_SUPPLY)
    demand = _post(commerce, tree, buyer, commerce_pb2.POST_KIND_DEMAND)
    match = commerce.call(
        "ExpressInterest",
        commerce_pb2.ExpressInterestRequest(request_id=rid(), post_id=supply, counterpart_post_id=demand),
        roles=("service",),
    ).match
    if accept:
        made = commerce.call(
            "AcceptMatch",
            commerce_pb2.AcceptMatchRequest(match_id=match.match_id, side=commerce_pb2.POST_KIND_DEMAND),
            roles=("service",),
        ).match
        assert made.status == commerce_pb2.MATCH_STATUS_MATCHED


def _request(commerce: Commerce, tree: Tree, label: str, kind: commerce_pb2.ServiceType.ValueType) -> str:
    request = commerce.call(
        "SubmitServiceRequest",
        commerce_pb2.SubmitServiceRequestRequest(
            request_id=rid(),
            membership_id=tree.members[label],
            type=kind,
            subject="Help",
            description="Please",
        ),
        roles=("service",),
    ).service_request
    return str(request.service_request_id)


def _resolve(commerce: Commerce, service_request_id: str) -> None:
    commerce.call(
        "ResolveServiceRequest",
        commerce_pb2.ResolveServiceRequestRequest(service_request_id=service_request_id, resolution="Done"),
    )


def _miss_deadline(commerce: Commerce, service_request_id: str) -> None:
    """Move a request's deadline to its submission, as if it had been resolved after its days ran out
    (the deadlines are days long; the test cannot wait that out)."""
    with psycopg.connect(commerce.database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "UPDATE {}.service_requests SET due_at = submitted_at WHERE service_request_id = %s"
            ).format(sql.Identifier(commerce.settings.service_name)),
            (service_request_id,),
        )


def _activity(commerce: Commerce, chamber_id: str, starts_in: timedelta) -> None:
    starts_at = datetime.now(UTC) + starts_in
    commerce.call(
        "CreateActivity",
        commerce_pb2.CreateActivityRequest(
            request_id=rid(),
            chamber_id=chamber_id,
            title="Members' forum",
            place="Luqiao",
            starts_at=to_timestamp(starts_at),
            capacity=50,
            sign_up_deadline=to_timestamp(starts_at - timedelta(hours=12)),
        ),
    )


def test_the_showcase_counts_activities_matches_and_requests_resolved_on_time(
    commerce: Commerce, tree: Tree
) -> None:
    # Everything the fixture did happened before this (the same clock as the service's).
    started = datetime.now(UTC)
    # Matches: one inside chamber A, one between A and B, one only proposed.
    _match(commerce, tree, "a1", "a2", accept=True)
    _match(commerce, tree, "a3", "b1", accept=True)
    _match(commerce, tree, "b2", "a4", accept=False)
    # Requests of chamber A: one resolved in time, one resolved after its deadline, one still open.
    in_time = _request(commerce, tree, "a1", commerce_pb2.SERVICE_TYPE_FINANCING)
    late = _request(commerce, tree, "a2", commerce_pb2.SERVICE_TYPE_LEGAL)
    _request(commerce, tree, "a3", commerce_pb2.SERVICE_TYPE_TALENT)
    _miss_deadline(commerce, late)
    _resolve(commerce, in_time)
    _resolve(commerce, late)
    # Activities: two of A and one of B start within the week; one of A starts later.
    for chamber_id, days in (
        (tree.chamber_a, 2),
        (tree.chamber_a, 3),
        (tree.chamber_b, 2),
        (tree.chamber_a, 40),
    ):
        _activity(commerce, chamber_id, timedelta(days=days))
    period = _period(started, datetime.now(UTC) + timedelta(days=7))

    def showcase(**subject: str) -> commerce_pb2.Showcase:
        request = commerce_pb2.GetShowcaseRequest(period=period, **subject)
        found: commerce_pb2.Showcase = commerce.call("GetShowcase", request).showcase
        return found

    chamber_a = showcase(chamber_id=tree.chamber_a)
    # Everyone joined before this period: four members at its end, no new joins.
    assert (chamber_a.members, chamber_a.new_joins, chamber_a.activities, chamber_a.matches) == (4, 0, 2, 2)
    assert (chamber_a.requests_resolved, chamber_a.requests_resolved_on_time) == (2, 1)
    chamber_b = showcase(chamber_id=tree.chamber_b)
    assert (chamber_b.members, chamber_b.activities, chamber_b.matches, chamber_b.requests_resolved) == (
        2,
        1,
        1,
        0,
    )
    # The city counts the match between its chambers A and B once.
    city = showcase(federation_id=tree.city)
    assert (city.members, city.new_joins, city.activities, city.matches) == (7, 0, 3, 2)
    assert (city.requests_resolved, city.requests_resolved_on_time) == (2, 1)
