"""Readers and writers for lab files. Each reader returns a :class:`gaitcli.data.timeseries.Recording`."""
