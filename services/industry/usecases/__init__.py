"""The industry service's use cases, one module per family. Each command is checked before its
transaction opens and done in one ``with uow.transaction() as tx:`` block."""
