"""``input_data`` / ``output_data`` of jobs.yaml (the original's keys), validated.

They become Batch's own resource files and output files at placement
(:mod:`batchfed_lab.data.mapping`): nothing is installed on nodes. What Batch cannot express
is refused here, not approximated: Batch selects input blobs by name or by prefix only
(no globs in the middle, no exclude), and output file patterns cannot exclude.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .loading import PathError

WORKING_DIR_VARS = ("$AZ_BATCH_TASK_WORKING_DIR", "${AZ_BATCH_TASK_WORKING_DIR}")
_ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# Azure's container rule: 3-63 of a-z, 0-9 and single hyphens, starting with a letter or digit
_CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_GLOB_CHARS = re.compile(r"[*?\[\]]")
UploadCondition = Literal["taskcompletion", "tasksuccess", "taskfailure"]
OUTPUT_PLACEHOLDERS = ("{job_id}", "{task_id}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


def split_remote_path(remote_path: str) -> tuple[str, str]:
    """``container[/prefix]`` → (container, prefix); the prefix keeps a trailing slash."""
    container, _, prefix = remote_path.partition("/")
    return container, prefix


def _remote_path(v: str) -> str:
    text = str(v).strip()
    if not text or text.startswith("/"):
        raise ValueError("must be container[/prefix] (a blob container name, then an optional blob prefix), without a leading /")
    container, prefix = split_remote_path(text)
    if not _CONTAINER.fullmatch(container):
        raise ValueError(f"'{container}' is not a blob container name (3-63 lowercase letters, digits and single hyphens)")
    if "\\" in prefix or any(part in (".", "..") for part in prefix.split("/")):
        raise ValueError("the blob prefix must not contain backslashes or '.' / '..' segments")
    return text


def _local_path(v: str | None) -> str:
    """Relative to the task's working directory (where Batch puts resource files and reads
    output patterns); the original's ``$AZ_BATCH_TASK_WORKING_DIR`` spelling is accepted."""
    text = "" if v is None else str(v).strip()
    for var in WORKING_DIR_VARS:
        if text == var or text.startswith(var + "/"):
            text = text[len(var) :].lstrip("/")
    if text.startswith(("/", "~", "$")) or re.match(r"^[A-Za-z]:", text) or "\\" in text:
        raise ValueError("must be a path relative to the task's working directory (Batch reads and writes only there)")
    if any(part == ".." for part in text.split("/")):
        raise ValueError("must not leave the task's working directory ('..')")
    return "/".join(p for p in text.split("/") if p not in ("", "."))


def _account(v: str) -> str:
    text = str(v).strip()
    if not _ACCOUNT_NAME.fullmatch(text):
        raise ValueError("must name an entry of settings.yaml storage_accounts (letters, digits, '-', '_', '.')")
    return text


class StorageInput(_Section):
    """One ``input_data.azure_storage[]`` entry: blobs downloaded before the task starts."""

    storage_account_settings: str = Field(..., description="a name under settings.yaml storage_accounts (local = Azurite)")
    remote_path: str = Field(..., description="container[/prefix]")
    local_path: str = Field("", description="relative to the task's working directory")
    is_file_share: bool = Field(False, description="only false: Azure Files shares are refused")
    include: tuple[str, ...] = Field((), description="blob names, or prefixes ending in *, relative to the prefix")
    exclude: tuple[str, ...] = Field((), description="refused: Batch resource files cannot exclude blobs")

    _a = field_validator("storage_account_settings")(classmethod(lambda cls, v: _account(v)))
    _r = field_validator("remote_path")(classmethod(lambda cls, v: _remote_path(v)))
    _l = field_validator("local_path", mode="before")(classmethod(lambda cls, v: _local_path(v)))

    @field_validator("is_file_share")
    @classmethod
    def _blobs_only(cls, v: bool) -> bool:
        if v:
            raise ValueError("Azure Files shares are not supported: Batch resource files read blob containers only")
        return v

    @field_validator("include")
    @classmethod
    def _names_or_prefixes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for i, pattern in enumerate(v):
            body = pattern[:-1] if pattern.endswith("*") else pattern
            if not pattern.strip() or _GLOB_CHARS.search(body) or pattern.startswith("/") or ".." in pattern.split("/"):
                raise PathError(
                    (i,),
                    pattern,
                    "Batch selects input blobs by name or by prefix only: name a blob ('x.txt') "
                    "or end a prefix with one '*' ('part-*')",
                )
        return v

    @field_validator("exclude")
    @classmethod
    def _no_exclude(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if v:
            raise ValueError("Batch resource files cannot exclude blobs: narrow remote_path or list what to include")
        return v

    @property
    def container(self) -> str:
        return split_remote_path(self.remote_path)[0]

    @property
    def prefix(self) -> str:
        return split_remote_path(self.remote_path)[1]


class StorageOutput(_Section):
    """One ``output_data.azure_storage[]`` entry: files uploaded after the task ends."""

    storage_account_settings: str = Field(..., description="a name under settings.yaml storage_accounts (local = Azurite)")
    remote_path: str = Field(..., description="container[/prefix]; {job_id} and {task_id} are replaced")
    local_path: str = Field("", description="relative to the task's working directory")
    is_file_share: bool = Field(False, description="only false: Azure Files shares are refused")
    include: tuple[str, ...] = Field(("**/*",), description="file patterns (*, ?, **, [abc]) under local_path")
    exclude: tuple[str, ...] = Field((), description="refused: Batch output file patterns cannot exclude files")
    condition: UploadCondition = Field(
        "taskcompletion", description="upload when the task completes (taskcompletion), succeeds or fails"
    )

    _a = field_validator("storage_account_settings")(classmethod(lambda cls, v: _account(v)))
    _l = field_validator("local_path", mode="before")(classmethod(lambda cls, v: _local_path(v)))

    @field_validator("remote_path")
    @classmethod
    def _remote(cls, v: str) -> str:
        container, prefix = split_remote_path(str(v).strip())
        if "{" in container:
            raise ValueError("placeholders ({task_id}, {job_id}) may appear in the prefix only, not the container")
        leftover = prefix
        for p in OUTPUT_PLACEHOLDERS:
            leftover = leftover.replace(p, "x")
        if "{" in leftover or "}" in leftover:
            raise ValueError("the only placeholders are {job_id} and {task_id}")
        return _remote_path(v)

    @field_validator("is_file_share")
    @classmethod
    def _blobs_only(cls, v: bool) -> bool:
        if v:
            raise ValueError("Azure Files shares are not supported: Batch output files upload to blob containers only")
        return v

    @field_validator("include")
    @classmethod
    def _patterns(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("give at least one file pattern, or leave include out (default: every file, '**/*')")
        for i, pattern in enumerate(v):
            if not pattern.strip() or pattern.startswith("/") or ".." in pattern.split("/"):
                raise PathError((i,), pattern, "a file pattern relative to local_path, not leaving it")
        return v

    @field_validator("exclude")
    @classmethod
    def _no_exclude(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if v:
            raise ValueError("Batch output file patterns cannot exclude files: narrow include instead")
        return v

    @property
    def container(self) -> str:
        return split_remote_path(self.remote_path)[0]

    def prefix_for(self, job_id: str, task_id: str) -> str:
        prefix = split_remote_path(self.remote_path)[1]
        return prefix.replace("{job_id}", job_id).replace("{task_id}", task_id)

    @property
    def per_task(self) -> bool:
        """Each task writes under its own prefix (the prefix names ``{task_id}``)."""
        return "{task_id}" in self.remote_path


_AZURE_BATCH_REFUSED = (
    "input_data.azure_batch (another task's files) is not supported in federations: the tasks "
    "may run on different pools; write them with output_data and read them with input_data.azure_storage"
)


class InputData(_Section):
    azure_storage: tuple[StorageInput, ...] = Field((), description="blobs Batch downloads before the task starts")
    azure_batch: Any = Field(None, description="refused: see docs/data.md")

    @field_validator("azure_batch")
    @classmethod
    def _refused(cls, v: Any) -> Any:
        if v is not None:
            raise ValueError(_AZURE_BATCH_REFUSED)
        return v


class OutputData(_Section):
    azure_storage: tuple[StorageOutput, ...] = Field((), description="files Batch uploads after the task ends")

    @model_validator(mode="before")
    @classmethod
    def _known(cls, data: Any) -> Any:
        if isinstance(data, dict) and "azure_batch" in data:
            raise PathError(("azure_batch",), data["azure_batch"], "output_data supports azure_storage only")
        return data
