"""The industry service: the district's industrial internet platform and the enterprise brain.

Parks, enterprises (by unified social credit code), the collection boxes on their machines, bulk
telemetry straight to Kafka, hourly utilisation rollups (availability, performance, quality, OEE), device
health alerts, the order flow from sales to after-sales, and digital workshops. docs/services/industry.md
describes it.
"""
