//! Authenticode signing: PKCS#7 SignedData over the image hash, appended to the certificate table.
