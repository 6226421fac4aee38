//! The uAPI server on arbitrary request frames and user memory.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| umdev_uapi_fuzz::frames(data));
