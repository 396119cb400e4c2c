//! eddy-client
