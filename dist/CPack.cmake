# The Debian package (`make deb`, or cpack --config BUILD/CPackConfig.cmake): one package,
# `flushout`, with everything `cmake --install` puts in place (dist/CMakeLists.txt), the
# service's user and unit set up by dist/debian/postinst.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME flushout)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "WebSocket hub for Flushout documents, its C client library, CLI and load generator")
set(CPACK_PACKAGE_DESCRIPTION
    "flushout-hub keeps Flushout documents in SQLite and syncs them to clients over\nWebSockets (contract flushout.v1). Includes the flushout-hub.service systemd unit,\nlibflushout-client with its headers, the flushout CLI and flushout-bench.")
set(FO_PACKAGE_MAINTAINER "Flushout maintainers <flushout@localhost>" CACHE STRING
    "The Maintainer field of the .deb")
set(CPACK_PACKAGE_CONTACT "${FO_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# The install runs with prefix /usr and DESTDIR the staging folder: the prefix the install
# scripts see is the one the package installs to (dist/install-service.cmake.in).
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
# Depends: the shared libraries the binaries link (dpkg-shlibdeps), plus libwebsockets' libuv
# event library, which libwebsockets loads at run time (no binary links it).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libwebsockets-evlib-uv")
# libflushout-client.so.0: a shlibs file and ldconfig triggers.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/dist/debian/postinst
    ${PROJECT_SOURCE_DIR}/dist/debian/prerm
    ${PROJECT_SOURCE_DIR}/dist/debian/postrm
    ${PROJECT_SOURCE_DIR}/dist/debian/conffiles
    ${PROJECT_SOURCE_DIR}/dist/debian/triggers)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
