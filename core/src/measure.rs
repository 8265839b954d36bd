//! PCR 11 prediction as systemd-stub measures it, TPM2 PolicyPCR digests, and .pcrsig generation.
