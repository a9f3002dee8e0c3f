#ifndef BWSSL_CMPI_SHIM_H
#define BWSSL_CMPI_SHIM_H
#include <mpi.h>

/* MPI's predefined handles are macros (in Open MPI, casts of global objects' addresses) that Swift
   cannot import; these inline functions hand them over. */
static inline MPI_Comm bwssl_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype bwssl_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype bwssl_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype bwssl_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op bwssl_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op bwssl_mpi_max(void) { return MPI_MAX; }
static inline void *bwssl_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int bwssl_mpi_success(void) { return MPI_SUCCESS; }
static inline int bwssl_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
#endif
