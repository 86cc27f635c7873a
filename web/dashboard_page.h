// The dashboard page, web/dashboard.html, embedded at build time
// (web/embed_text.cmake) so the directory needs no file beside it.
#ifndef UNIPOOL_WEB_DASHBOARD_PAGE_H_
#define UNIPOOL_WEB_DASHBOARD_PAGE_H_

namespace unipool {

extern const char kDashboardHtml[];

}  // namespace unipool

#endif  // UNIPOOL_WEB_DASHBOARD_PAGE_H_
