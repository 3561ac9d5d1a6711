from __future__ import annotations

from django.urls import path

from tracking import views

app_name = "tracking"

urlpatterns = [
    path("my/list/", views.my_list, name="my-list"),
    path("my/list/undo/", views.entry_undo, name="entry-undo"),
    path("my/list/visibility/", views.list_visibility, name="list-visibility"),
    path("my/list/<int:mal_id>/", views.entry_update, name="entry-update"),
    path("my/list/<int:mal_id>/status/", views.entry_status, name="entry-status"),
    path("my/list/<int:mal_id>/remove/", views.entry_remove, name="entry-remove"),
    path("my/list/import/", views.list_import, name="import"),
    path("my/list/import/<int:job_id>/", views.import_job, name="import-job"),
    path("my/list/export/", views.list_export, name="export"),
    path("search/myanimelist/", views.search_myanimelist, name="search-myanimelist"),
    path("my/tokens/", views.api_tokens, name="api-tokens"),
    path("my/tokens/<int:token_id>/revoke/", views.api_token_revoke, name="api-token-revoke"),
    path("my/stats/", views.my_stats, name="my-stats"),
    path("my/companion/", views.companion, name="companion"),
    path("u/<str:username>/", views.public_list, name="public-list"),
    path("u/<str:username>/stats/", views.public_stats, name="public-stats"),
    path("accounts/delete/", views.account_delete, name="account-delete"),
]
