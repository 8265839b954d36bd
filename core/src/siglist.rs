//! EFI_SIGNATURE_LIST databases (db, dbx, .auth, efivarfs files).
