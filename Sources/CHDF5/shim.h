// Getters for HDF5 macros that Swift cannot import. Each global type id is
// only valid after H5open(), which the macros call; these getters do the same.
#ifndef BWSSL_CHDF5_SHIM_H
#define BWSSL_CHDF5_SHIM_H
#include <hdf5.h>

static inline hid_t bw_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t bw_H5FD_SEC2(void) { return H5FD_SEC2; }
static inline hid_t bw_H5S_ALL(void) { return H5S_ALL; }
static inline hid_t bw_H5E_DEFAULT(void) { return H5E_DEFAULT; }
static inline unsigned bw_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned bw_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned bw_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline hid_t bw_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t bw_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t bw_H5P_GROUP_CREATE(void) { return H5P_GROUP_CREATE; }
static inline hid_t bw_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t bw_H5P_FILE_CREATE(void) { return H5P_FILE_CREATE; }
static inline hid_t bw_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t bw_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t bw_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t bw_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t bw_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t bw_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t bw_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t bw_H5T_C_S1(void) { return H5T_C_S1; }
static inline size_t bw_H5T_VARIABLE(void) { return H5T_VARIABLE; }

/// An IEEE-754 binary16 file type, laid out as numpy/h5py write float16.
static inline hid_t bw_make_float16_type(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0) return t;
    if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0) goto fail;
    if (H5Tset_size(t, 2) < 0) goto fail;
    if (H5Tset_ebias(t, 15) < 0) goto fail;
    return t;
fail:
    H5Tclose(t);
    return -1;
}

#endif
