#ifndef BWSSL_CLAPACKE_SHIM_H
#define BWSSL_CLAPACKE_SHIM_H
#include <lapacke.h>
#endif
