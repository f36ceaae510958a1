//! Property tests over random sequences of operations (filled in below).
