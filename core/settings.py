"""Settings errors in one line: a pydantic ValidationError as the key, the value received and
what is allowed, for the CLI to print (exit code 2)."""

from pydantic import ValidationError

from core.errors import shown


def validation_message(error: ValidationError) -> str:
    """``"port=70000: Input should be less than or equal to 65535"`` (each problem, joined)."""
    problems = []
    for detail in error.errors():
        key = ".".join(str(part) for part in detail["loc"])
        message = detail["msg"].removeprefix("Value error, ")
        if key:
            problems.append(f"{key}={shown(detail.get('input'))}: {message}")
        else:
            problems.append(message)
    return "Invalid setting " + "; ".join(problems) + "."
