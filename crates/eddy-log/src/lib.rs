//! eddy-log
