"""The server's open-files limit, raised to the hard limit when it starts.

Every client connection holds a file descriptor, and so does each file the repository poll
opens. Containers and system services often start processes with a soft limit of 1,024 (or less)
under a hard limit a thousand times higher. Measured with a soft limit of 256: 1,000 idle
connections to the REST port left the server refusing every new gRPC and REST connection, and
every repository poll failing with EMFILE, until they closed. Go's runtime raises the soft limit
to the hard one at start for the same reason; this does it for the server's processes (workers
inherit it).
"""

import resource


def raise_open_files_limit() -> tuple[int, int]:
    """Sets the soft RLIMIT_NOFILE to the hard one where the system allows it; returns the soft
    limit before and after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):  # a hard limit over the kernel's nr_open
        return soft, soft
    return soft, hard
