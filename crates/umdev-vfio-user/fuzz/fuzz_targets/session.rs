//! A whole session (decoder + dispatcher + device) driven by arbitrary
//! client bytes and fds over a socket.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| umdev_vfio_user_fuzz::session(data));
