"""The district's stories, one module per domain: each adds its drafts and tickers to the schedule."""
