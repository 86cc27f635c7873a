// The dashboard page, store/dashboard.html, embedded at build time
// (store/embed_text.cmake) so the directory needs no file beside it.
#ifndef UNIPOOL_STORE_DASHBOARD_PAGE_H_
#define UNIPOOL_STORE_DASHBOARD_PAGE_H_

namespace unipool {

extern const char kDashboardHtml[];

}  // namespace unipool

#endif  // UNIPOOL_STORE_DASHBOARD_PAGE_H_
