"""The data hub: the cross-scenario views — entities and links with a 360° view and a timeline, one alert
inbox with escalation and incidents, the district dashboard — projected from every domain's events and
rebuildable by replay. See docs/services/hub.md."""
