"""The commerce service: the chamber-of-commerce code (商会码) — federations, chambers, one-click join, one
code, one map, activities, matching, service requests, training, excellence and showcase figures. See
docs/services/commerce.md."""
