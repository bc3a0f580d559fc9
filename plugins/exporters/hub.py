"""``still export ... --push-to-hub OWNER/NAME``: upload an export folder to the Hugging Face Hub
with ``huggingface_hub`` (``create_repo(exist_ok=True)`` then ``upload_folder``, one commit).

The token comes from ``$HF_TOKEN`` or the variable ``--token-env`` names, and is checked (with the
repo id) before anything is exported, so a missing token costs nothing. ``HF_ENDPOINT`` selects
another hub (a private one, or the local fake the tests run). huggingface_hub is imported on call.
"""

from __future__ import annotations

import os
from pathlib import Path

from stillhouse.kernel.errors import UserError
from stillhouse.kernel.secrets import remember

DEFAULT_TOKEN_ENV = "HF_TOKEN"


def hub_token(token_env: str | None) -> str:
    """The token in ``$token_env`` (default ``HF_TOKEN``); a UserError when it is unset or empty."""
    name = token_env or DEFAULT_TOKEN_ENV
    token = os.environ.get(name, "").strip()
    if not token:
        raise UserError(
            f"--push-to-hub needs a Hugging Face token in ${name}, which is not set",
            hint=f"create a write token at https://huggingface.co/settings/tokens and export {name}=hf_... "
            "(or name another variable with --token-env)",
        )
    remember([token])  # redacted wherever this process prints or writes it
    return token


def check_repo_id(repo_id: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise UserError(f"--push-to-hub {repo_id!r} is not a Hub repo id: {exc}", hint="give OWNER/NAME") from None
    if "/" not in repo_id:
        raise UserError(f"--push-to-hub {repo_id!r} names no owner", hint="give OWNER/NAME, e.g. my-org/my-student")


def push_folder(
    folder: Path, repo_id: str, token: str, *, repo_type: str = "model", private: bool = False, message: str = ""
) -> str:
    """Create ``repo_id`` (kept if it exists) and upload ``folder`` to it in one commit; return the
    commit's URL."""
    from huggingface_hub import HfApi, constants

    if constants.is_offline_mode():
        raise UserError(
            f"cannot push to {repo_id}: huggingface_hub is in offline mode (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set)",
            hint=f"unset them for this command; the export is kept in {folder}",
        )
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, repo_type=repo_type, folder_path=str(folder), commit_message=message or "Upload with still export"
        )
    except Exception as exc:  # noqa: BLE001 - HTTP status errors, its HTTP client's network errors, bad card metadata
        raise UserError(
            f"pushing {folder} to {repo_id} failed: {type(exc).__name__}: {(str(exc) or '?').splitlines()[0]}",
            hint=f"the export is kept in {folder}; retry with `hf upload {repo_id} {folder}`",
        ) from None
    return str(commit.commit_url)
