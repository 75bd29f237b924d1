"""Where requests and the records beside them are kept: the ledger's contract and its two back-ends."""
