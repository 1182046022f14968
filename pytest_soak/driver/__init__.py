"""The load driver: targets, clients and the open-model replay loop."""
