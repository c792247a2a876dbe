"""The hub's proto <-> domain translation: the only modules that build or read *_pb2 messages. One module
per family; shared pieces here."""
