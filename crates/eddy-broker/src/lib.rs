//! eddy-broker
