//! umdev's vfio-user server: serves VFIO devices of the model to virtual
//! machine monitors over UNIX sockets.
