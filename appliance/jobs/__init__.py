"""The agent's scheduled jobs (APScheduler): backups, the nightly check, expiry alerts, the digest, sweeps."""
