"""The chaos suite: every bulk job under every fault at once, killed and resumed."""
