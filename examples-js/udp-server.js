	// UDP服务端
	var dgram = require('dgram');
	var server = dgram.createSocket("udp4");
	server.on("message", function (msg, rinfo) {
		console.log("server got: " + msg + " from " + rinfo.address + ":" + rinfo.port);
	});
	server.on("listening", function () {
		var address = server.address();
		console.log("server listening " + address.address + ":" + address.port);
	});
	server.bind(41234);  // 绑定端口号,创建服务端
