//! The framing and the decoder choke point on arbitrary bytes and fds.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| umdev_vfio_user_fuzz::decode(data));
