"""Where a Loghub line's message starts: the per-system header formats of the Loghub-2.0 benchmark
protocol, and a generic guess for a system that has none.

A format such as ``<Date> <Time> <Pid> <Level> <Component>: <Content>`` says which header fields
precede the content (Loghub's own notation: fields in angle brackets, the rest a regex). These
formats are part of the benchmark's protocol (they say where the content starts, not how to parse
it). A line that does not fit its format keeps the whole line as content, as does every line of a
system with no format when the guess finds no header.
"""

from __future__ import annotations

import re

LOG_FORMATS: dict[str, str] = {
    "Android": r"<Date> <Time>  <Pid>  <Tid> <Level> <Component>: <Content>",
    "Apache": r"\[<Time>\] \[<Level>\] <Content>",
    "BGL": r"<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> <Level> <Content>",
    "Hadoop": r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>",
    "HDFS": r"<Date> <Time> <Pid> <Level> <Component>: <Content>",
    "HealthApp": r"<Time>\|<Component>\|<Pid>\|<Content>",
    "HPC": r"<LogId> <Node> <Component> <State> <Time> <Flag> <Content>",
    "Linux": r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>",
    "Mac": r"<Month>  <Date> <Time> <User> <Component>\[<PID>\]( \(<Address>\))?: <Content>",
    "OpenSSH": r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>",
    "OpenStack": r"<Logrecord> <Date> <Time> <Pid> <Level> <Component> \[<ADDR>\] <Content>",
    "Proxifier": r"\[<Time>\] <Program> - <Content>",
    "Spark": r"<Date> <Time> <Level> <Component>: <Content>",
    "Thunderbird": r"<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> <Component>(\[<PID>\])?: <Content>",
    "Windows": r"<Date> <Time>, <Level>                  <Component>    <Content>",
    "Zookeeper": r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>",
}

_FIELD = re.compile(r"<([^<>]+)>")


def format_regex(log_format: str) -> re.Pattern[str]:
    """The regex of a Loghub log format: each field a lazy group, ``Content`` the rest of the line."""
    parts = _FIELD.split(log_format)
    if "Content" not in parts[1::2]:
        raise ValueError(f"log format {log_format!r} has no <Content> field")
    pattern = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            pattern.append(re.sub(" +", r"\\s+", part))
        else:
            pattern.append(f"(?P<{part}>.*)" if part == "Content" else f"(?P<{part}>.*?)")
    return re.compile("^" + "".join(pattern) + "$")


_LEVELS = {
    "TRACE",
    "DEBUG",
    "INFO",
    "NOTICE",
    "WARN",
    "WARNING",
    "ERROR",
    "ERR",
    "SEVERE",
    "FATAL",
    "CRITICAL",
    "CRIT",
    "ALERT",
    "EMERG",
    "FINE",
    "FINER",
    "FINEST",
    "VERBOSE",
    "I",
    "W",
    "E",
    "D",
    "V",
}
_MONTHS_DAYS = {
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
    "mon",
    "tue",
    "wed",
    "thu",
    "fri",
    "sat",
    "sun",
}


def _headerish(token: str) -> bool:
    bare = token.strip("[]()<>,")
    return (
        any(c.isdigit() for c in token)
        or bare.upper() in _LEVELS
        or bare.lower()[:3] in _MONTHS_DAYS
        and len(bare) <= 9
        or token == "-"
        or (token.startswith("[") and token.endswith("]"))
    )


def guess_content(line: str, max_header_tokens: int = 8) -> str:
    """The message of a line with no known format: leading time, level, id and ``[bracketed]``
    tokens are header, and so is a ``component:`` token right after them. A ``a|b|c|message``
    line's message is after its third bar. Without such a header the whole line is content."""
    if line.count("|") >= 3 and len(line.split("|", 3)[0]) <= 40:
        return line.split("|", 3)[3].strip()
    tokens = line.split()
    i = 0
    while i < min(len(tokens), max_header_tokens) and _headerish(tokens[i]):
        i += 1
    if i == 0:
        return line.strip()
    if i < len(tokens) - 1 and i < max_header_tokens and tokens[i].endswith(":") and len(tokens[i]) > 1:
        i += 1
    return " ".join(tokens[i:]) if i < len(tokens) else line.strip()


def split_contents(lines: list[str], log_format: str | None) -> tuple[list[str], int]:
    """Each line's content and how many lines did not fit ``log_format`` (``None``: guess)."""
    if log_format is None:
        return [guess_content(line) for line in lines], 0
    regex = format_regex(log_format)
    contents, misfits = [], 0
    for line in lines:
        match = regex.match(line.rstrip("\r\n"))
        if match is None:
            misfits += 1
            contents.append(line.strip())
        else:
            contents.append(match.group("Content").strip())
    return contents, misfits
