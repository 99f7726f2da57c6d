"""The course catalog: the one place that reads course metadata. See catalog.course for the format."""

from catalog.catalog import (
    Catalog,
    catalog_from_list,
    catalog_to_list,
    course_files,
    find_repo_root,
    load_catalog,
    read_course,
)
from catalog.course import (
    FLAVORS,
    METADATA_FILE,
    CatalogError,
    Course,
    DataFile,
    Resources,
    SmokeTest,
    course_from_dict,
    course_to_dict,
    format_memory,
    normalize_notebook_path,
    parse_course,
    parse_memory,
)

__all__ = [
    "FLAVORS",
    "METADATA_FILE",
    "Catalog",
    "CatalogError",
    "Course",
    "DataFile",
    "Resources",
    "SmokeTest",
    "catalog_from_list",
    "catalog_to_list",
    "course_files",
    "course_from_dict",
    "course_to_dict",
    "find_repo_root",
    "format_memory",
    "load_catalog",
    "normalize_notebook_path",
    "parse_course",
    "parse_memory",
    "read_course",
]
