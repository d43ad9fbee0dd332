// LAPACKE from Debian's liblapacke-dev (Debian's OpenBLAS is built without
// it, so it is linked on its own).
#ifndef FASTWEIGHTS_CLAPACKE_SHIM_H
#define FASTWEIGHTS_CLAPACKE_SHIM_H
#include <lapacke.h>
#endif
