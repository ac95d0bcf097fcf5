// Open MPI's C API, with its handle macros (MPI_COMM_WORLD, MPI_FLOAT, …) as functions Swift can call.
#include <mpi.h>

static inline MPI_Comm ssf_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype ssf_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype ssf_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype ssf_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype ssf_mpi_long_long(void) { return MPI_LONG_LONG; }
static inline MPI_Op ssf_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op ssf_mpi_max(void) { return MPI_MAX; }
static inline void *ssf_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int ssf_mpi_success(void) { return MPI_SUCCESS; }
