"""Pagination of the debates list."""

from rest_framework.pagination import PageNumberPagination


class DebatePagination(PageNumberPagination):
    """Page numbers, with a client-chosen page size up to 100."""

    page_size_query_param = "pageSize"
    max_page_size = 100
