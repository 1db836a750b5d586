"""How a task process is started and contained, as a Batch node agent does it: the command line
split into arguments without a shell (``command_line``), the user and the environment a task
runs with, and whatever a task leaves running found and killed (``isolation``)."""
