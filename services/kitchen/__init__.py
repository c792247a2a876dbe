"""The kitchen service: the smart sunshine kitchen (智能阳光厨房) — school kitchens, staff morning checks,
live equipment (cold chain, disinfection, UV), AI captures, ingredient traceability, ratings, inspections
and the five promises. See docs/services/kitchen.md."""
