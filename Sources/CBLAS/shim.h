#ifndef BWSSL_CBLAS_SHIM_H
#define BWSSL_CBLAS_SHIM_H
#include <cblas.h>
#endif
