/* routes.c — the route index of GET /api/v1 (see routes.h). */
#include "routes.h"

#ifndef PARKPULSE_VERSION
#define PARKPULSE_VERSION "0.1"
#endif

/* Keep in step with api_handle() (api.c), silence_route() (silence.c), http.c (/api/v1/events) and
 * docs/openapi.yaml: tests/integration/test_openapi.py compares them. */
static const char index_json[] =
    "{\"version\":\"" PARKPULSE_VERSION "\",\"openapi\":\"docs/openapi.yaml\",\"routes\":["
    "{\"method\":\"GET\",\"path\":\"/\",\"summary\":\"the overview page (parks × indicators)\"},"
    "{\"method\":\"GET\",\"path\":\"/park/{park}\",\"summary\":\"a park's page\"},"
    "{\"method\":\"GET\",\"path\":\"/indicator/{indicator}\",\"summary\":\"every park on one indicator, ranked\"},"
    "{\"method\":\"GET\",\"path\":\"/dashboard/{name}\",\"summary\":\"a dashboard page (see /api/v1/dashboards)\"},"
    "{\"method\":\"GET\",\"path\":\"/report/{period}\",\"summary\":\"the monthly 通报 as a printable page (A4 landscape)\"},"
    "{\"method\":\"GET\",\"path\":\"/assets/{file}\",\"summary\":\"the pages' scripts, styles and icons\"},"
    "{\"method\":\"GET\",\"path\":\"/graph/{park}/{file}\",\"summary\":\"RRD graph, {indicator}.png or {indicator}.svg\"},"
    "{\"method\":\"GET\",\"path\":\"/healthz\",\"summary\":\"200 ok when ready\"},"
    "{\"method\":\"GET\",\"path\":\"/metrics\",\"summary\":\"Prometheus text exposition\"},"
    "{\"method\":\"GET\",\"path\":\"/api/v1\",\"summary\":\"this index\"},"
    "{\"method\":\"GET\",\"path\":\"/api/v1/status\",\"summary\":\"every park with every series' latest figure and pace status\"},"
    "{\"method\":\"GET\",\"path\":\"/api/v1/parks/{park}\",\"summary\":\"one park, same shape\"},"
    "{\"method\":\"GET\",\"path\":\"/api/v1/series/{park}/{indicator}\",\"summary\":\"the monthly points with value and pace\"},"
    "{\"method\":\"GET\",\"path\":\"/api/v1/history/{park}/{indicator}/{period}\",\"summary\":\"every vintage of one figure, oldest first\"},"
    "{\"method\":\"GET\",\"path\":\"/api/v1/ranking/{indicator}\",\"summary\":\"the parks of a peer group ranked by gap, value, yoy or completion, best first\"},"
    "{\"method\":\"GET\",\"path\":\"/api/v1/report\",\"summary\":\"the monthly 通报: CSV (long or wide), JSON or the xlsx workbook\"},"
    "{\"method\":\"GET\",\"path\":\"/api/v1/alerts\",\"summary\":\"active alerts and the current seq; ?since=N: alerts after N\"},"
    "{\"method\":\"GET\",\"path\":\"/api/v1/events\",\"summary\":\"Server-Sent Events: the alert stream\"},"
    "{\"method\":\"GET\",\"path\":\"/api/v1/dashboards\",\"summary\":\"the dashboard definitions\"},"
    "{\"method\":\"GET\",\"path\":\"/api/v1/dashboards/{name}\",\"summary\":\"one dashboard definition\"},"
    "{\"method\":\"GET\",\"path\":\"/api/v1/silences\",\"summary\":\"the active silences\"},"
    "{\"method\":\"POST\",\"path\":\"/api/v1/silences\",\"summary\":\"a new silence (JSON, bearer token): 201 with it\"},"
    "{\"method\":\"DELETE\",\"path\":\"/api/v1/silences/{id}\",\"summary\":\"end a silence now (bearer token)\"},"
    "{\"method\":\"POST\",\"path\":\"/api/v1/observations\",\"summary\":\"CSV body with the bearer token: 202 once on disk, 400 with each bad row\"},"
    "{\"method\":\"DELETE\",\"path\":\"/api/v1/observations/{park}/{indicator}/{period}\",\"summary\":\"retract that month's figure (?reason=, bearer token): 200 with the retraction, 404 without a figure\"}"
    "]}\n";

const char *routes_index_json(void) { return index_json; }
