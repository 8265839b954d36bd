//! Parsing and checking .pcrsig: pkfp against .pcrpkey, signatures over each `pol`.
