// Neural-network layers and checkpoint I/O.
