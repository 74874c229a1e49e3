/*
 * Typed, validated render parameters. Each query parameter has one parser
 * and one error message naming it and the expected form; a request is parsed
 * once into ts_params before anything is read.
 */
#ifndef TS_PARAMS_H
#define TS_PARAMS_H

#include "ts_common.h"
#include "ts_encode.h"
#include "ts_reader.h"
#include "ts_request.h"

#include <stdbool.h>

typedef struct ts_params {
    int bidx[TS_MAX_BANDS];
    int nbidx;
    bool nodata_set;
    double nodata;
    bool unscale;
    int resampling; /* source decimation (GDALRIOResampleAlg), default nearest */
    int reproject;  /* warp kernel (GDALResampleAlg), default nearest */
    double rescale[TS_MAX_BANDS][2];
    int nrescale;
    bool return_mask;
    double buffer;  /* pixels, multiple of 0.5 */
    int padding;
    int tilesize;   /* 0 = from the TMS and scale */
    char *expression; /* owned; NULL when absent */
    char *colormap_name;
    char *colormap_json;
    char *color_formula;
    char *algorithm;
    char *algorithm_params;
} ts_params;

/* Names accepted on tile routes (anything else is "unknown"). */
bool ts_params_known(const char *name);
/* Parse every render parameter of req. On error ctx names the parameter (400). */
int ts_params_parse(const ts_request *req, int max_tilesize, ts_params *out, ts_ctx *ctx);
void ts_params_free(ts_params *p);

#endif
