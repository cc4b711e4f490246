"""Multi-site sync over MQTT: signed movement tokens, typed messages, topics (transport arrives with issue 3)."""
