// MPI for Swift (Debian: libopenmpi-dev; flags from pkg-config's ompi-c).
// Open MPI spells its predefined handles as macros over global objects, which
// Swift cannot import; these inline functions hand them over.
#include <mpi.h>

static inline MPI_Comm fw_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype fw_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype fw_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype fw_mpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Op fw_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op fw_mpi_min(void) { return MPI_MIN; }
static inline MPI_Op fw_mpi_max(void) { return MPI_MAX; }
static inline MPI_Errhandler fw_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline void *fw_mpi_in_place(void) { return MPI_IN_PLACE; }
