"""Where a weights file comes from (a path, or a Hugging Face Hub reference) and goes to (a Hub repository).

``hf://OWNER/REPO/FILE[@REVISION]`` (for example
``hf://PKUDigitalHealth/ECGFounder/12_lead_ECGFounder.pth``) is fetched by
``huggingface_hub`` into its usual cache (``HF_HOME``; ``HF_ENDPOINT`` names a mirror), so
a cluster's login node can fill the cache once and jobs read it. Offline
(``HF_HUB_OFFLINE=1``) a cached file is used as it is; a file that is not cached yet gets
one message saying what to download and where to put it. ``publish`` uploads files to a
model repository in one commit, with the token ``huggingface_hub`` finds (``HF_TOKEN``, ``hf auth login``).
"""

from __future__ import annotations

import os
from pathlib import Path

PREFIX = "hf://"


class WeightsUnavailable(ValueError):
    """A Hub reference that cannot be fetched or found in the cache; the message says what to do."""


def parse_hub_reference(ref: str) -> tuple[str, str, str | None]:
    """(repo id, file path in the repository, revision or None) of ``hf://OWNER/REPO/FILE[@REVISION]``."""
    body, _, revision = ref.removeprefix(PREFIX).partition("@")
    parts = body.split("/")
    if len(parts) < 3 or not all(parts):
        raise WeightsUnavailable(f"{ref!r} is not a Hub reference of the form hf://OWNER/REPO/FILE[@REVISION]")
    return "/".join(parts[:2]), "/".join(parts[2:]), revision or None


def locate_weights(ref: str | os.PathLike) -> Path:
    """A local path for ``ref``: itself, or the Hub file in the local cache (downloaded if needed)."""
    if not str(ref).startswith(PREFIX):
        return Path(ref)
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo, filename, revision = parse_hub_reference(str(ref))
    try:
        return Path(hf_hub_download(repo, filename, revision=revision, endpoint=os.environ.get("HF_ENDPOINT")))
    # (LocalEntryNotFoundError is an EntryNotFoundError: it comes first.)
    except LocalEntryNotFoundError:
        cache = constants.HF_HUB_CACHE
        raise WeightsUnavailable(
            f"{ref} is not in the Hugging Face cache ({cache}) and the Hub cannot be reached from here. On a machine "
            f"with internet run: hf download {repo} {filename}{f' --revision {revision}' if revision else ''}, then "
            f"copy its cache folder to {cache} here, or download the file anywhere and give its path "
            "instead of the hf:// reference") from None
    except (EntryNotFoundError, RevisionNotFoundError, RepositoryNotFoundError) as error:
        what = ("repository" if isinstance(error, RepositoryNotFoundError) else
                "revision" if isinstance(error, RevisionNotFoundError) else "file")
        raise WeightsUnavailable(f"{ref}: the Hub has no such {what} ({str(error).splitlines()[0]})") from None
    except HfHubHTTPError as error:
        raise WeightsUnavailable(f"{ref}: the Hub answered {str(error).splitlines()[0]}") from None


def publish(repo: str, files: dict[str, Path | bytes], message: str) -> str:
    """Upload ``files`` (name in the repository -> a path or bytes) to the model repository ``repo``
    (created when missing) as one commit; the commit's URL."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT"))
    try:
        api.create_repo(repo, exist_ok=True)
        return api.create_commit(repo, [CommitOperationAdd(name, content if isinstance(content, bytes) else str(content))
                                        for name, content in files.items()], commit_message=message).commit_url
    except HfHubHTTPError as error:
        raise WeightsUnavailable(f"pushing to {repo}: the Hub answered {str(error).splitlines()[0]}") from None
