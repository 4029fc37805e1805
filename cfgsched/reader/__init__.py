"""The reader: cfg text per fork rules → :class:`~cfgsched.schedule.NetSchedule`
(reading only: the cfg editor is :mod:`cfgsched.tools.editor`)."""
