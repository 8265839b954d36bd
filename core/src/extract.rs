//! Section extraction: exact payload bytes, conventional file names, profiles.
