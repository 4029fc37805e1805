"""The reader: cfg text per fork rules → :class:`~cfgsched.schedule.NetSchedule`, and the
byte-preserving cfg editor."""
