// The periodic task form of django-celery-beat: show the crontab in words under the field. Its own template
// does this in an inline script; here it is a static file (see templates/admin/djcelery/).
"use strict";
django.jQuery(function ($) {
  const readableCrontabs = JSON.parse($("#readable-crontabs").text());
  const originalHelp = JSON.parse($("#crontab-help").text());
  $(".field-crontab_translation").hide();
  $(".field-crontab").change(function () {
    $(".field-crontab .help").html(`${originalHelp}<br/>Translation: ${readableCrontabs[$("#id_crontab").val()]}`);
  });
});
