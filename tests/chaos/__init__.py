"""The fault suite (`make chaos`): random commands, random SIGKILLs, a full replay, exact accounting."""
